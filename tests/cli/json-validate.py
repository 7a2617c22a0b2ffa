#!/usr/bin/env python3
"""json-validate.py SCHEMA_DIR MANIFEST: check the documents that
tests/cli/json-schema.sh collected. Each MANIFEST line is
SCHEMA<TAB>EXPECTED_RC<TAB>RC<TAB>FILE<TAB>COMMAND: the command exited RC
(EXPECTED_RC wanted) and printed FILE on stdout, which must hold exactly
one JSON document valid against docs/schema/SCHEMA.json (error.json, with
the code naming RC, when the command failed). Every schema must be used.
Prints one line per problem; exits 1 if there was any."""
import json
import os
import sys
import warnings

import jsonschema

warnings.filterwarnings("ignore", category=DeprecationWarning)

CODES = {1: "failure", 2: "usage", 3: "not_found", 4: "conflict",
         5: "busy", 6: "integrity"}


def load_schemas(d):
    out = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".json"):
            with open(os.path.join(d, f)) as fh:
                s = json.load(fh)
            jsonschema.Draft202012Validator.check_schema(s)
            out[f[:-5]] = s
    return out


def one_document(text):
    """The one JSON document of @text, or raise ValueError."""
    doc, end = json.JSONDecoder().raw_decode(text.lstrip())
    if text.lstrip()[end:].strip():
        raise ValueError("more than one document (or trailing text): %r"
                         % text.lstrip()[end:][:80])
    return doc


def main():
    schemas = load_schemas(sys.argv[1])
    store = {s["$id"]: s for s in schemas.values()}
    used = {"defs"}
    problems = 0
    checked = 0
    for line in open(sys.argv[2]):
        name, want, rc, path, cmd = line.rstrip("\n").split("\t", 4)
        want, rc = int(want), int(rc)
        used.add(name)
        checked += 1

        def bad(msg):
            nonlocal problems
            problems += 1
            print("FAIL: %s: %s" % (cmd, msg))

        if rc != want:
            bad("exited %d, expected %d" % (rc, want))
        text = open(path).read()
        try:
            doc = one_document(text)
        except ValueError as e:
            bad("stdout is not one JSON document (%s): %r" % (e, text[:200]))
            continue
        schema = schemas[name] if rc == 0 else schemas["error"]
        if rc != 0:
            used.add("error")
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
        errors = sorted(validator.iter_errors(doc), key=lambda e: e.path)
        for e in errors[:3]:
            bad("%s.json: %s at %s" % (name if rc == 0 else "error",
                                      e.message, list(e.absolute_path)))
        if rc != 0 and not errors and doc["error"]["code"] != CODES.get(rc, "failure"):
            bad("error code %r for exit %d" % (doc["error"]["code"], rc))
    for name in sorted(set(schemas) - used):
        problems += 1
        print("FAIL: docs/schema/%s.json is checked by no command" % name)
    print("%d documents checked, %d problems" % (checked, problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
