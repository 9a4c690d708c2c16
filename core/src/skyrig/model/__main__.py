"""``python -m skyrig.model``: print the Application Model's JSON Schema (docs/app-model.schema.json)."""

import json

from skyrig.model import json_schema

print(json.dumps(json_schema(), indent=2))
