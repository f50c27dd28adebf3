"""The bare script a user might write instead: import requests, yaml, jsonschema; one POST."""

from __future__ import annotations

import json
import os
import sys

import jsonschema  # noqa: F401 (imported as such a script would, to check its input)
import requests
import yaml  # noqa: F401 (imported as such a script would, to read its config)

url = os.environ["BENCH_API_URL"].rstrip("/")
path = f"/v1/projects/{os.environ['BENCH_PROJECT']}/services/{os.environ['BENCH_SERVICE']}/build"
answer = requests.post(
    url + path,
    json=json.loads(os.environ["BENCH_BODY"]),
    headers={"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}"},
    timeout=30,
)
answer.raise_for_status()
sys.stdout.write(json.dumps(answer.json()["data"]) + "\n")
