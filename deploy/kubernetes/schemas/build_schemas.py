"""Turn registry-shipped schemas into the JSON Schema files kubeconform reads (used by ../validate.sh).

    build_schemas.py k8s SRC DEST         copy kubernetes-validate's ``vX.Y.0-local-strict`` schemas, rewriting
                                          their ``$ref``s from ``/api/_definitions.json#…`` to the sibling file
                                          and dropping their ``$id`` (refs resolve against the file)
    build_schemas.py crd DEST CRD.yaml…   write ``DEST/<group>/<kind>_<version>.json`` for every version of
                                          every CustomResourceDefinition in the files, made strict

Strict, as kubeconform's ``-strict`` expects of a schema: every object schema that lists ``properties`` and
neither ``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields`` gets ``additionalProperties:
false``, so an unknown field fails. OpenAPI's ``nullable`` and ``x-kubernetes-int-or-string`` become JSON Schema.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

_K8S_REF = '"/api/_definitions.json#'


class _Loader(yaml.SafeLoader):
    """YAML 1.1's ``=`` (the "value" type) is a plain string in Kubernetes (a CRD's enum lists operators)."""


def _plain(loader: _Loader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:value", _plain)


def build_k8s(src: Path, dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in src.glob("*.json"):
        schema = json.loads(path.read_text().replace(_K8S_REF, '"_definitions.json#'))
        schema.pop("$id", None)  # https://kubernetes.io/api/…: refs would resolve against it, not the file
        (dest / path.name).write_text(json.dumps(schema))
        count += 1
    if count == 0:
        raise SystemExit(f"build_schemas.py: no schemas in {src}")
    return count


def strict(node: Any) -> Any:
    """``node`` (an OpenAPI v3 schema from a CRD) as strict JSON Schema."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def build_crds(dest: Path, files: list[Path]) -> int:
    count = 0
    for file in files:
        for doc in yaml.load_all(file.read_text(), Loader=_Loader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            group, kind = spec["group"], spec["names"]["kind"].lower()
            for version in spec["versions"]:
                schema = strict(version["schema"]["openAPIV3Schema"])
                # CRD schemas leave metadata open; the API server checks it like any object's.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                target = dest / group / f"{kind}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema, indent=1))
                count += 1
    if count == 0:
        raise SystemExit(f"build_schemas.py: no CustomResourceDefinition in {', '.join(map(str, files))}")
    return count


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "k8s":
        print(f"{build_k8s(Path(argv[1]), Path(argv[2]))} Kubernetes schemas")
    elif len(argv) >= 3 and argv[0] == "crd":
        print(f"{build_crds(Path(argv[1]), [Path(a) for a in argv[2:]])} custom resource schemas")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
