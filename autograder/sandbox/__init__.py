"""The one isolation layer: bubblewrap, cgroups and the forked processes that kernels and the judge share."""
