"""Versioned JSON Schemas for the JSON reports, generated from the pydantic types.

The committed files under ``harmscope/reports/schema/`` are the documented contract; a test
checks that they match the types. Regenerate with ``python -m harmscope.reports._schema``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harmscope.types import SCHEMA_VERSION, AuditResult, RunResult

SCHEMA_DIR = Path(__file__).parent / "schema"
SCHEMAS = {"run-result": RunResult, "audit-result": AuditResult}


def schema_for(name: str) -> dict[str, Any]:
    model = SCHEMAS[name]
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"harmscope/{name}/v{SCHEMA_VERSION}"
    schema["description"] = (model.__doc__ or name).strip().splitlines()[0] + f" (schema version {SCHEMA_VERSION})"
    return schema


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


def validate(name: str, data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``data`` does not match the committed schema."""
    import jsonschema

    jsonschema.validate(data, load_schema(name))


def write_schemas() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name in SCHEMAS:
        (SCHEMA_DIR / f"{name}.schema.json").write_text(
            json.dumps(schema_for(name), indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_schemas()
