"""Landing sensor: a new or corrected landing file triggers the runs for its partition.

Each tick compares every landing file's md5 with two records:
- the ledger: the checksum bronze last loaded for that file, which the bronze step reports as a
  materialization of the file's landing asset partition (whoever launched the run: this sensor, a
  UI backfill or the command line);
- the sensor's cursor: the checksums it has already requested a run for.

A file that matches either is left alone, so a file is never processed twice and a run that is
still queued is not requested again; a corrected file has a new checksum and is processed again.
Days that need processing are grouped into contiguous ranges, one single-run backfill each, whose
run key is made of the files' checksums. Each run builds the changed datasets' daily models for
those days; the later days whose look-back windows include them are refreshed by
`downstream_refresh_sensor` once the new data has passed its blocking checks.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus

from assets.medallion import LANDING_CHECKSUM
from assets.ml.model import ML_GROUP
from assets.partitions import RANGE_END, RANGE_START, daily_partitions, partition_days
from resources.config import TarmacConfig
from tarmac.days import contiguous_ranges
from tarmac.paths import LANDING_DATASETS, REFERENCE_DATASETS, TarmacPaths
from tarmac.settings.loader import load_settings

TRIGGER_TAG = "tarmac/trigger"
LEDGER_BATCH = 5000


@dataclass(frozen=True)
class LandingFile:
    dataset: str  # flights, weather, planes, ...
    day: str | None  # None for a reference table
    relpath: str  # relative to the data directory, as bronze's lineage column writes it

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(["landing", self.dataset])


def landing_files(paths: TarmacPaths, partition_keys: set[str]) -> Iterable[tuple[LandingFile, Path]]:
    """Every landing file the pipeline reads; a daily file named outside the partitions is skipped."""
    for dataset in LANDING_DATASETS:
        for path in sorted((paths.landing / dataset).glob("*.csv")):
            if path.stem in partition_keys:
                yield LandingFile(dataset, path.stem, str(path.relative_to(paths.data_dir))), path
    for name in REFERENCE_DATASETS:
        path = paths.reference_file(name)
        if path.exists():
            yield LandingFile(name, None, str(path.relative_to(paths.data_dir))), path


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Cursor:
    """What the sensor remembers between ticks, serialized as JSON."""

    def __init__(self, raw: str | None):
        data = json.loads(raw) if raw else {}
        self.stat: dict[str, list] = data.get("stat", {})  # relpath -> [mtime_ns, size, md5]
        self.loaded: dict[str, str] = data.get("loaded", {})  # relpath -> md5 bronze loaded
        self.requested: dict[str, str] = data.get("requested", {})  # relpath -> md5 a run was requested for
        # landing asset -> the last storage id read of its ledger (`observations` in older cursors)
        self.ledger: dict[str, int] = data.get("ledger", data.get("observations", {}))

    def md5(self, relpath: str, path: Path) -> str:
        """The file's md5, hashed again only when its size or modification time changed."""
        st = path.stat()
        cached = self.stat.get(relpath)
        if cached and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
            return cached[2]
        checksum = md5_of(path)
        self.stat[relpath] = [st.st_mtime_ns, st.st_size, checksum]
        return checksum

    def read_ledger(self, instance: dg.DagsterInstance, datasets: Iterable[str]) -> None:
        """Fold the landing files bronze reported loading since the last tick into `loaded`."""
        for dataset in datasets:
            key = dg.AssetKey(["landing", dataset])
            after = self.ledger.get(dataset)
            while True:
                result = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=key, after_storage_id=after),
                    limit=LEDGER_BATCH,
                    ascending=True,
                )
                for record in result.records:
                    metadata = record.asset_materialization.metadata
                    if LANDING_CHECKSUM in metadata and "file" in metadata:
                        self.loaded[metadata["file"].value] = metadata[LANDING_CHECKSUM].value
                    after = record.storage_id
                if not result.has_more:
                    break
            if after is not None:
                self.ledger[dataset] = after

    def serialize(self) -> str:
        return json.dumps(
            {"stat": self.stat, "loaded": self.loaded, "requested": self.requested, "ledger": self.ledger},
            sort_keys=True,
        )


ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def in_flight(instance: dg.DagsterInstance, loaders: dict[dg.AssetKey, str]) -> set[tuple[str, str | None]]:
    """(dataset, day) pairs that a queued or running run, or an unfinished backfill, will load.

    A file landed just before its day's backfill (launched from the UI, say) reaches bronze
    through that backfill: requesting it again would load it twice. `loaders` maps each bronze
    asset to the landing dataset it loads; a reference table's day is None.
    """
    busy: set[tuple[str, str | None]] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE)):
        targeted = [loaders[k] for k in run.asset_selection or () if k in loaders]
        if not targeted:
            continue
        days: list[str | None] = list(partition_days(run.tags) or [None])
        busy.update((dataset, day) for dataset in targeted for day in days)
    for backfill in instance.get_backfills(status=BulkActionStatus.REQUESTED):
        data = backfill.asset_backfill_data
        if data is None:
            continue
        target = data.target_subset
        for key, dataset in loaders.items():
            if key in target.partitions_subsets_by_asset_key:
                busy.update((dataset, day) for day in target.get_partitions_subset(key).get_partition_keys())
            elif key in target.non_partitioned_asset_keys:
                busy.add((dataset, None))
    return busy


def run_key(prefix: str, changes: list[tuple[LandingFile, str]]) -> str:
    """A key made of the files' checksums: the same content is never requested twice."""
    digest = hashlib.sha256("\n".join(sorted(f"{f.relpath}={c}" for f, c in changes)).encode()).hexdigest()
    return f"{prefix}:{digest[:24]}"


def _downstream(asset_graph, roots: set[dg.AssetKey], partitioned: bool) -> list[dg.AssetKey]:
    """The materializable assets downstream of the landing assets, of one partitioning kind."""
    selection = dg.AssetSelection.assets(*roots).downstream() - dg.AssetSelection.assets(*roots)
    keys = selection.resolve(asset_graph)
    return sorted(
        (
            k for k in keys
            if asset_graph.get(k).is_materializable and asset_graph.get(k).is_partitioned == partitioned
            and asset_graph.get(k).group_name != ML_GROUP  # scored and retrained by the ML sensors
        ),
        key=lambda k: k.to_user_string(),
    )


@dg.sensor(
    name="landing_file_sensor",
    target=dg.AssetSelection.all(),  # what it may request; each run request narrows it
    minimum_interval_seconds=load_settings().sensors.landing_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=__doc__.split("\n\n")[0],
)
def landing_file_sensor(context: dg.SensorEvaluationContext, tarmac: TarmacConfig) -> dg.SensorResult:
    paths = tarmac.paths
    cursor = Cursor(context.cursor)
    cursor.read_ledger(context.instance, (*LANDING_DATASETS, *REFERENCE_DATASETS))
    partition_keys = set(daily_partitions.get_partition_keys())

    pending: list[tuple[LandingFile, str]] = []
    for landing_file, path in landing_files(paths, partition_keys):
        checksum = cursor.md5(landing_file.relpath, path)
        if checksum not in (cursor.loaded.get(landing_file.relpath), cursor.requested.get(landing_file.relpath)):
            pending.append((landing_file, checksum))

    asset_graph = context.repository_def.asset_graph
    if pending:
        # bronze/<dataset> loads landing/<dataset>
        loaders = {
            child: f.dataset
            for f in {f for f, _ in pending}
            for child in asset_graph.get(f.asset_key).child_keys
            if asset_graph.get(child).is_materializable
        }
        busy = in_flight(context.instance, loaders)
        waiting = [f for f, _ in pending if (f.dataset, f.day) in busy]
        if waiting:
            # not marked requested: once that run has loaded them, the ledger decides
            context.log.info(f"{len(waiting)} changed files wait for the run or backfill that is loading their day")
            pending = [(f, c) for f, c in pending if (f.dataset, f.day) not in busy]
    requests: list[dg.RunRequest] = []
    reference = [(f, c) for f, c in pending if f.day is None]
    if reference:
        targets = _downstream(asset_graph, {f.asset_key for f, _ in reference}, partitioned=False)
        requests.append(
            dg.RunRequest(
                run_key=run_key("landing:reference", reference),
                asset_selection=targets,
                tags={TRIGGER_TAG: "landing"},
            )
        )
    # one run per range of consecutive days that changed the same datasets
    by_day: dict[str, list[tuple[LandingFile, str]]] = defaultdict(list)
    for f, c in pending:
        if f.day is not None:
            by_day[f.day].append((f, c))
    by_datasets: dict[frozenset[str], list[str]] = defaultdict(list)
    for day, changes in by_day.items():
        by_datasets[frozenset(f.dataset for f, _ in changes)].append(day)
    for datasets, days in sorted(by_datasets.items(), key=lambda item: min(item[1])):
        targets = _downstream(asset_graph, {dg.AssetKey(["landing", d]) for d in datasets}, partitioned=True)
        for first, last in contiguous_ranges(days):
            changes = [fc for day in days if first <= day <= last for fc in by_day[day]]
            requests.append(
                dg.RunRequest(
                    run_key=run_key(f"landing:{first}:{last}", changes),
                    asset_selection=targets,
                    tags={RANGE_START: first, RANGE_END: last, TRIGGER_TAG: "landing"},
                )
            )
    for f, c in pending:
        cursor.requested[f.relpath] = c
    if not requests:
        return dg.SensorResult(skip_reason="every landing file has been loaded or requested", cursor=cursor.serialize())
    summary = ", ".join(
        f"{r.tags.get(RANGE_START, 'reference')}..{r.tags.get(RANGE_END, '')}".rstrip(".") for r in requests
    )
    context.log.info(f"{len(pending)} new or changed landing files: runs for {summary}")
    return dg.SensorResult(run_requests=requests, cursor=cursor.serialize())

