"""An ES module made by wasm-pack (``--target web``) as a classic script, for a classic service worker.

A service worker loads code with ``importScripts()``, which runs classic scripts only; a module service
worker would do, but Firefox ESR 140 starts none. wasm-pack's ``web`` output is one self-contained module
(no imports): ``export`` on its classes, constants and functions, one ``export{local as public, …}``
at the end, and ``import.meta.url`` only to find its ``.wasm`` beside itself when not given one. This
wraps it in a function whose result is set on ``self``, and refuses anything else rather than guess.

Example::

    >>> src = 'export class A{}export function f(){return import.meta.url}function g(){}export{g as init};'
    >>> print(classic_script(src, "lib"))  # doctest: +NORMALIZE_WHITESPACE
    self.lib = (() => {
    class A{}function f(){return self.location.href}function g(){}
    return { A, f, init: g };
    })();
"""

from __future__ import annotations

import re

_NAMED = re.compile(r"\bexport\s+(class|const|function|let)\s+([A-Za-z_$][\w$]*)")
_LIST = re.compile(r"\bexport\s*\{([^}]*)\}\s*;?\s*$")


class NotConvertible(ValueError):
    """The module has a shape this converter does not know (an import, a default expression, …)."""


def classic_script(module: str, global_name: str) -> str:
    """``module``'s exports as the properties of ``self.<global_name>``, set by a classic script."""
    if re.search(r"\bimport\s*[\s{*(\"']", module) or re.search(r"\bexport\s*(\*|\{[^}]*\}\s*from\b)", module):
        raise NotConvertible("the module imports another module")
    exports: dict[str, str] = {}

    def named(match: re.Match[str]) -> str:
        exports[match.group(2)] = match.group(2)
        return f"{match.group(1)} {match.group(2)}"

    body = _NAMED.sub(named, module)
    tail = _LIST.search(body)
    if tail:
        for part in filter(None, (p.strip() for p in tail.group(1).split(","))):
            local, _, public = (s.strip() for s in part.partition(" as "))
            exports[public or local] = local
        body = body[: tail.start()]
    if re.search(r"\bexport\b", body):
        raise NotConvertible("an export this converter does not handle")
    if not exports:
        raise NotConvertible("the module exports nothing")
    body = body.replace("import.meta.url", "self.location.href")
    if "import.meta" in body:
        raise NotConvertible("import.meta is used for more than its URL")
    fields = ", ".join(public if public == local else f"{public}: {local}" for public, local in exports.items())
    return f"self.{global_name} = (() => {{\n{body.strip()}\nreturn {{ {fields} }};\n}})();\n"
