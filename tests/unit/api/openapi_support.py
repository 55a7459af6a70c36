"""Shared helpers of tests/unit/api: load the OpenAPI description and the
event schemas, resolve local $refs, validate payloads against components.

Plain functions (no conftest.py: tests/integration has one, and two
conftest modules of the same name in one pytest run need packages)."""
import functools
import json
import os
import re

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SPEC_PATH = os.path.join(ROOT, "schemas", "api", "openapi.yaml")
EVENTS_DIR = os.path.join(ROOT, "schemas", "events")

# the methods an OpenAPI path item can hold; HEAD and OPTIONS are implicit
# at the edge and must not be listed (CONTRACT.md: HEAD wherever GET,
# OPTIONS -> 204 with Allow)
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
POLICIES = ("public", "user", "moderator", "admin")
SPEC_URI = "urn:encore:openapi"


@functools.lru_cache(maxsize=None)
def load_spec():
    with open(SPEC_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def operations(spec=None):
    """[(METHOD, path, operation)] in file order."""
    spec = spec or load_spec()
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                out.append((method.upper(), path, op))
    return out


def resolve(obj, spec=None):
    """Follows a local {"$ref": "#/..."} (repeatedly) to its target."""
    spec = spec or load_spec()
    seen = 0
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        assert ref.startswith("#/"), "only local $refs are used: %r" % ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
        seen += 1
        assert seen < 20, "a $ref loop at %r" % ref
    return obj


@functools.lru_cache(maxsize=None)
def _registry():
    spec = load_spec()
    return Registry().with_resource(SPEC_URI, Resource(contents=spec, specification=DRAFT202012))


def component_validator(name):
    """A JSON Schema 2020-12 validator for components/schemas/<name>."""
    return Draft202012Validator({"$ref": "%s#/components/schemas/%s" % (SPEC_URI, name)},
                                registry=_registry())


def schema_errors(validator, instance):
    return sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))


@functools.lru_cache(maxsize=None)
def load_event_schemas():
    """{topic: schema} for every schemas/events/*.json."""
    out = {}
    for name in sorted(os.listdir(EVENTS_DIR)):
        if name.endswith(".json"):
            with open(os.path.join(EVENTS_DIR, name), encoding="utf-8") as f:
                out[name[:-len(".json")]] = json.load(f)
    return out


SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
