"""One start call through Northflank's Python SDK, as a user's script would make it.

Run by bench/run.py with the SDK's own interpreter; the SDK reads NORTHFLANK_API_TOKEN and
NORTHFLANK_API_BASE_URL from the environment.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

northflank = importlib.import_module("northflank")  # installed in bench/.scratch only

client = northflank.ApiClient()
body = json.loads(os.environ["BENCH_BODY"])
answer = client.start.service.build(
    project_id=os.environ["BENCH_PROJECT"], service_id=os.environ["BENCH_SERVICE"], data=body
)
sys.stdout.write(json.dumps(answer.data) + "\n")
