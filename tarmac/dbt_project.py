"""The dbt project's files: its manifest and the analyses the feature store runs, both built by
`make manifest` (set-up and CI), never at import time."""

from pathlib import Path

from dagster_dbt import DbtProject

from tarmac.paths import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def manifest_path() -> Path:
    path = dbt_project.manifest_path
    if not path.exists():
        raise FileNotFoundError(
            f"The dbt manifest {path} does not exist. Build it with `make manifest` "
            "(make run, make test and CI do this for you)."
        )
    return path


# Where `make manifest` compiles the analyses the feature store runs (their own target path).
COMPILED_ANALYSES = Path("analyses", "compiled", "tarmac", "analyses")
# What compiled SQL is rendered from: newer sources mean it is stale.
DBT_SOURCES = ("analyses", "macros", "models", "dbt_project.yml", "profiles.yml")
# What dbt parses: the sources of compiled SQL and the singular data tests.
DBT_PARSED = (*DBT_SOURCES, "tests")


def project_state(project_dir: Path = DBT_PROJECT_DIR) -> tuple[tuple[str, int, int], ...]:
    """Every file dbt parses in `project_dir`, with its modification time and size: equal states,
    equal parses (the environment aside, which the project reads only while dbt executes)."""
    files = [p for name in DBT_PARSED for p in [project_dir / name, *(project_dir / name).rglob("*")]]
    return tuple(sorted((str(p.relative_to(project_dir)), (s := p.stat()).st_mtime_ns, s.st_size)
                        for p in files if p.is_file()))


def compiled_analysis(name: str) -> str:
    """The SQL of the dbt analysis `name` as `make manifest` compiled it; refused when missing or
    older than what it is compiled from, since stale SQL would silently compute other features
    than gold's."""
    path = DBT_PROJECT_DIR / dbt_project.target_path / COMPILED_ANALYSES / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: compile it with `make manifest`.")
    sources = [p for folder in DBT_SOURCES for p in [DBT_PROJECT_DIR / folder, *(DBT_PROJECT_DIR / folder).rglob("*")]]
    newer = [p for p in sources if p.is_file() and p.stat().st_mtime > path.stat().st_mtime]
    if newer:
        raise RuntimeError(f"{path} is older than {newer[0]}: recompile it with `make manifest`.")
    return path.read_text(encoding="utf-8")
