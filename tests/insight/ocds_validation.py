"""Validate OCDS packages offline with libcoveocds: the standard from ../shared/ocds and the
extensions from their local copies, served on 127.0.0.1 (the package's public extension URLs
are pointed there for the validator). Nothing may reach the network: ``no_network`` refuses
every connection that is not to 127.0.0.1 while a package is validated."""

from __future__ import annotations

import copy
import functools
import http.server
import json
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from marketplace.insight.ocds.common import EXTENSIONS

SHARED_OCDS = Path(__file__).resolve().parents[2].parent / "shared" / "ocds"
STANDARD_ZIP = SHARED_OCDS / "standard-1__1__5.zip"
EXTENSIONS_DIR = SHARED_OCDS / "extensions"


def require_shared_ocds() -> None:
    if not STANDARD_ZIP.is_file() or not EXTENSIONS_DIR.is_dir():
        pytest.fail(
            f"The OCDS 1.1.5 schema ZIP and extensions are missing: expected {STANDARD_ZIP} "
            f"and {EXTENSIONS_DIR} (../shared/ocds from the project root)."
        )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@functools.cache
def extension_server() -> str:
    """Serve ../shared/ocds/extensions on 127.0.0.1 (one server for the test session)."""
    require_shared_ocds()
    handler = functools.partial(_Quiet, directory=str(EXTENSIONS_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


@contextmanager
def no_network():
    """Refuse every connection but to 127.0.0.1; record what was refused."""
    refused: list = []
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1",):
            refused.append(address)
            raise OSError(f"network access refused in tests: {address!r}")
        return real_connect(self, address)

    socket.socket.connect = guarded
    try:
        yield refused
    finally:
        socket.socket.connect = real_connect


def localised(package: dict) -> dict:
    """The package with each declared extension's URL pointed at its local copy."""
    base = extension_server()
    local = copy.deepcopy(package)
    assert local["extensions"] == list(EXTENSIONS), "declare exactly the local extensions"
    local["extensions"] = [f"{base}/{EXTENSIONS[url]}/extension.json" for url in EXTENSIONS]
    return local


def record_package_errors(package: dict) -> list[str]:
    """Draft 4 errors of a record package against record-package-schema.json from the ZIP,
    its references to the (patched) release schema resolved locally."""
    import zipfile

    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    require_shared_ocds()
    base = "https://standard.open-contracting.org/schema/1__1__5/"
    with zipfile.ZipFile(STANDARD_ZIP) as archive:
        schema = json.loads(archive.read("standard-1__1__5/schema/record-package-schema.json"))
        versioned = json.loads(
            archive.read("standard-1__1__5/schema/versioned-release-validation-schema.json")
        )
    registry = Registry().with_resources(
        [
            (
                f"{base}release-schema.json",
                Resource.from_contents(json.loads(patched_release_schema()), DRAFT4),
            ),
            (
                f"{base}versioned-release-validation-schema.json",
                Resource.from_contents(versioned, DRAFT4),
            ),
        ]
    )
    validator = jsonschema.Draft4Validator(
        schema, registry=registry, format_checker=jsonschema.FormatChecker()
    )
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(package)
    ]


def as_release_package(package: dict) -> dict:
    """A record package's releases and compiled releases as a release package (libcoveocds
    would fetch the versioned-release schema from the network to check a record package)."""
    releases = []
    for record in package["records"]:
        releases += record["releases"] + [record["compiledRelease"]]
    result = {key: item for key, item in package.items() if key not in ("records", "packages")}
    result["releases"] = releases
    return result


def validate(package: dict) -> dict:
    """libcoveocds' results for the package, validated offline against 1.1.5 with the local
    extensions; fails the test if anything tried to reach the network."""
    from libcoveocds.api import ocds_json_output
    from libcoveocds.config import LibCoveOCDSConfig

    require_shared_ocds()
    config = LibCoveOCDSConfig({"standard_zip": f"file://{STANDARD_ZIP}", "context": "api"})
    data = localised(package)
    with no_network() as refused:
        result = ocds_json_output(
            json_data=data,
            schema_version="1.1",
            lib_cove_ocds_config=config,
            record_pkg=False,
        )
    assert refused == [], f"the validator tried to reach the network: {refused}"
    return result


def assert_valid(package: dict) -> dict:
    """0 schema errors, 0 closed-codelist errors, every extension applied."""
    if "records" in package:
        errors = record_package_errors(package)
        assert errors == [], "\n".join(errors[:50])
        return assert_valid(as_release_package(package))
    result = validate(package)
    errors = result.get("validation_errors") or []
    assert errors == [], json.dumps(errors, indent=1)[:4000]
    invalid = result.get("extensions", {}).get("invalid_extension") or {}
    assert invalid == {}, invalid
    assert result.get("extensions", {}).get("is_extended_schema"), result.get("extensions")
    closed = list((result.get("additional_closed_codelist_values") or {}).values())
    assert closed == [], closed
    # libcoveocds does not list the fields of an extended schema (it then calls every field of
    # a release "additional" and checks no closed codelist): the releases are also checked
    # with a plain Draft 4 validator over the patched schema, enums and all.
    releases = package.get("releases") or [
        item for record in package.get("records", []) for item in record["releases"]
    ]
    assert_valid_releases(releases)
    for record in package.get("records", []):
        assert_valid_releases([record["compiledRelease"]])
    return result


@functools.cache
def patched_release_schema() -> str:
    """The 1.1.5 release schema with each local extension's release-schema.json merged in
    (JSON Merge Patch, as the extension registry does), as JSON text (cached)."""
    import zipfile

    import json_merge_patch

    require_shared_ocds()
    with zipfile.ZipFile(STANDARD_ZIP) as archive:
        schema = json.loads(archive.read("standard-1__1__5/schema/release-schema.json"))
    for directory in EXTENSIONS.values():
        patch = json.loads((EXTENSIONS_DIR / directory / "release-schema.json").read_text())
        json_merge_patch.merge(schema, patch)
    return json.dumps(schema)


def schema_errors(releases: list[dict]) -> list[str]:
    """Every error of a plain Draft 4 validation of each release against the patched schema,
    enums included: a value outside a closed codelist (the extensions' too) is an error here,
    where libcoveocds reports closed codelists apart from schema errors."""
    import jsonschema

    schema = json.loads(patched_release_schema())
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    return [
        f"{release['id']}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
        for release in releases
        for error in validator.iter_errors(release)
    ]


def unknown_fields(releases: list[dict]) -> set[str]:
    """Fields of the releases that the patched schema does not define (paths without
    indexes)."""
    schema = json.loads(patched_release_schema())
    definitions = schema["definitions"]
    found: set[str] = set()

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def walk(data, node: dict, path: str) -> None:
        node = resolve(node)
        if isinstance(data, dict):
            properties = node.get("properties")
            if properties is None:
                return
            for key, item in data.items():
                if key in properties:
                    walk(item, properties[key], f"{path}/{key}")
                elif not any(p.startswith(f"{path}/{key}") for p in found):
                    found.add(f"{path}/{key}")
        elif isinstance(data, list) and "items" in node:
            for item in data:
                walk(item, node["items"], path)

    for release in releases:
        walk(release, schema, "")
    return found


# The one field outside the local extensions: bid statistics live in ``bids.statistics``,
# defined by the bids extension, which the UK extension depends on (its +bidStatistics.csv
# adds the SME and VCSE measures to that extension's codelist) but which is not among the
# local copies, so it is not declared.
EXPECTED_UNKNOWN = {"/bids"}


def assert_valid_releases(releases: list[dict]) -> None:
    errors = schema_errors(releases)
    assert errors == [], "\n".join(errors[:50])
    assert unknown_fields(releases) <= EXPECTED_UNKNOWN, unknown_fields(releases)
