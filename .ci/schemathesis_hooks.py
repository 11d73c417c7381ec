"""schemathesis hooks for .ci/api-fuzz (loaded through SCHEMATHESIS_HOOKS).

Media uploads (PUT /api/v1/media/{movie_id}) take video/mp4 and video/webm bodies: raw bytes,
sent the way schemathesis sends application/octet-stream.
"""
import schemathesis

schemathesis.serializer.alias(["video/mp4", "video/webm"], "application/octet-stream")
