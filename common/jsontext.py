"""One way to turn a JSON value into the text a flow or a vendor field sees.

Vendors and hooks hand us JSON values where the dialogue wants text (a slot value, a call
parameter, a vendor field). Every side converts with `json_text`, so a value reads the same
wherever it came from:

| value                         | text                                   |
|-------------------------------|----------------------------------------|
| `None` (JSON `null`)          | `""` — absent, not the word "null"     |
| a string                      | the string, unchanged                  |
| `true` / `false`              | `"true"` / `"false"`                   |
| an integer                    | its digits (`7` → `"7"`)               |
| an integral float             | its digits (`1.0` → `"1"`): JSON does not tell 1 from 1.0 |
| another finite float          | the shortest round-trip form (`0.5`)   |
| NaN or ±infinity              | `""` — not JSON numbers, so absent     |
| an array or object            | compact JSON, keys sorted, UTF-8 kept; non-finite numbers inside become `null` |
"""

from __future__ import annotations

import json
import math
from typing import Any

# Past this an integral float no longer holds its digits exactly; JSON notation says it better.
_EXACT_INTEGRAL_LIMIT = 1e15


def json_text(value: Any) -> str:
    """The text of a JSON value, as the table in this module's docstring says."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        if value.is_integer() and abs(value) < _EXACT_INTEGRAL_LIMIT:
            return str(int(value))
        return json.dumps(value)
    return json.dumps(
        _finite(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )


def _finite(value: Any) -> Any:
    """The structure with NaN and infinities replaced by None, so json.dumps writes valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
