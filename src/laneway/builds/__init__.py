"""Builds: a commit's tree, built once by the spec's command, stored content-addressed.

`builder.build` makes a build, `artifacts.ArtifactStore` keeps and unpacks it, `git` reads
the repository. Called by the build controller, the runtime (unpack) and the CLI.
"""

from laneway.builds.artifacts import ArtifactStore
from laneway.builds.builder import BuildResult, build

__all__ = ["ArtifactStore", "BuildResult", "build"]
