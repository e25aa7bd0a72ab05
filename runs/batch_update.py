"""Many rows of one table updated in one statement: UPDATE ... FROM (VALUES ...), joined on the primary key.

What Django's bulk_update does, without its CASE WHEN pk = ... THEN ... per field and row: that builds
and compiles one expression per field and row in Python (the collector's persist of a 100-slot run
took 700 of them every second), and the database then walks each CASE for each row. Here the rows
travel as one VALUES list, each value as Django would save it (numbers and booleans as they are).
PostgreSQL and SQLite (3.33+); other databases get bulk_update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import connections, models, router

ROWS_PER_STATEMENT = 1000   # SQLite allows 32,766 parameters per statement: 1,000 rows of up to 32 fields


def update_rows(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Set `fields` of each row: `rows` are (pk, value of each field, in that order) tuples, each value of
    its field's Python type (int, float, bool, datetime, ...) or None."""
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    columns = [model._meta.get_field(name) for name in fields]
    if connection.vendor not in ("postgresql", "sqlite"):
        model.objects.bulk_update([model(pk=row[0], **dict(zip(fields, row[1:]))) for row in rows], list(fields))
        return
    preparers = [_preparer(field, connection) for field in (model._meta.pk, *columns)]
    prepared = [[value if prepare is None else prepare(value) for prepare, value in zip(preparers, row)]
                for row in rows]
    with connection.cursor() as cursor:
        for start in range(0, len(prepared), ROWS_PER_STATEMENT):
            batch = prepared[start:start + ROWS_PER_STATEMENT]
            cursor.execute(_statement(connection, model, columns, len(batch)),
                           [value for row in batch for value in row])


def _preparer(field: models.Field, connection) -> Callable | None:
    """How a value of `field` is made ready for the database: None for numbers and booleans, which the
    drivers take as they are (the caller passes ints, floats and bools; a per-value call for each of
    them cost more than the statement), else the field's get_db_prep_save (times, on SQLite text)."""
    if isinstance(field, (models.IntegerField, models.AutoField, models.FloatField, models.BooleanField)):
        return None
    return lambda value: field.get_db_prep_save(value, connection)


def _statement(connection, model: type[models.Model], columns: list[models.Field], count: int) -> str:
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    values = ", ".join(["(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"] * count)
    if connection.vendor == "postgresql":
        # Literal values in a VALUES list get their types from the values (NULL alone is text): cast each
        # to its column's type.
        names = ", ".join(["id", *(f"c{i}" for i in range(len(columns)))])
        sets = ", ".join(f"{quote(field.column)} = v.c{i}::{field.db_type(connection)}"
                         for i, field in enumerate(columns))
        return f"UPDATE {table} SET {sets} FROM (VALUES {values}) AS v({names}) WHERE {table}.{pk} = v.id"
    sets = ", ".join(f"{quote(field.column)} = v.column{i + 2}" for i, field in enumerate(columns))
    return f"UPDATE {table} SET {sets} FROM (VALUES {values}) AS v WHERE {table}.{pk} = v.column1"
