"""Host-only build tooling for pyapp's static site; it never ships in the browser wheel."""
