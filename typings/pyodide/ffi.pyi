from collections.abc import Callable
from typing import Any

class JsException(Exception):
    name: str
    message: str

class JsProxy:
    def to_py(self, *, depth: int = ...) -> Any: ...
    def assign_to(self, to: Any) -> None: ...
    def __getattr__(self, name: str) -> Any: ...

def to_js(
    obj: Any,
    *,
    depth: int = ...,
    pyproxies: Any = ...,
    create_pyproxies: bool = ...,
    dict_converter: Callable[..., Any] | None = ...,
    default_converter: Callable[..., Any] | None = ...,
) -> Any: ...
def create_proxy(obj: Any, *, capture_this: bool = ..., roundtrip: bool = ...) -> Any: ...
def destroy_proxies(proxies: Any) -> None: ...
