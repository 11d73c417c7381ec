"""schemathesis hooks for .ci/api-fuzz (loaded through SCHEMATHESIS_HOOKS).

Media uploads (PUT /api/v1/media/{movie_id}) take video/mp4 and video/webm bodies: raw bytes,
sent the way schemathesis sends application/octet-stream.
"""
import schemathesis

schemathesis.serializer.alias(["video/mp4", "video/webm"], "application/octet-stream")

# CPython 3.11 before 3.11.8 can raise "SystemError: AST constructor recursion depth mismatch"
# when two threads run ast.parse at once (python/cpython#106905). Hypothesis parses lambdas'
# source to describe filtered strategies, and with --workers 2 it did so in two threads: a CI
# run failed on it. One parse at a time avoids the race; parsing is a tiny part of the run.
import ast
import threading

_parse = ast.parse
_parse_lock = threading.Lock()


def _parse_one_at_a_time(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _parse_one_at_a_time
