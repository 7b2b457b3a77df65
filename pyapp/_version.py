"""pyapp's version, in one place: the package, its wheel's metadata (hatch) and the site's build.json read it."""

__version__ = "0.1.0"
