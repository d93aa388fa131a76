"""SQL text Tarmac writes itself (for DuckDB)."""


def quote_identifier(name: str) -> str:
    """A column, table or schema name as a double-quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A string as a single-quoted SQL literal."""
    return "'" + text.replace("'", "''") + "'"
