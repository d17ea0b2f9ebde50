"""Stage 3, the shared half of rendering: artifacts as data, env-file quoting, templates, the manifest,
`.env.example` and the shard lock. Each target's own files are rendered by its module in
`deploytool/targets/`. Nothing here touches the disk."""

from deploytool.render.artifacts import Artifact, RenderContext

__all__ = ["Artifact", "RenderContext"]
