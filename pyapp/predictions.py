"""What a classifier answers: (label, probability) pairs, most likely first.

A plain list (as classifiers always returned), with the top label at hand and an HTML table that
notebooks, PyScript's ``display`` and the playground show (passive HTML: no script, no style).
Pure Python: host-testable.
"""

from __future__ import annotations

from html import escape


class Predictions(list[tuple[str, float]]):
    """(label, probability) pairs, most likely first: a plain list (as classifiers returned before),
    which notebooks show as a table with a bar per label.

    >>> top = Predictions([("cat", 0.91), ("dog", 0.07)])
    >>> top == [("cat", 0.91), ("dog", 0.07)], top.label, top.probability, top.as_dict()
    (True, 'cat', 0.91, {'cat': 0.91, 'dog': 0.07})
    >>> top
    [('cat', 0.91), ('dog', 0.07)]
    >>> print(top.text())
    cat  91.0%
    dog   7.0%
    """

    @property
    def label(self) -> str:
        """The most likely label."""
        return self[0][0]

    @property
    def probability(self) -> float:
        """The most likely label's probability."""
        return self[0][1]

    def as_dict(self) -> dict[str, float]:
        """Label -> probability, in order."""
        return dict(self)

    def text(self) -> str:
        """One line per label: name and percentage, aligned."""
        width = max((len(label) for label, _ in self), default=0)
        return "\n".join(f"{label:<{width}} {100 * p:6.1f}%" for label, p in self)

    def _repr_html_(self) -> str:
        rows = "".join(
            f'<tr><th scope="row">{escape(label)}</th>'
            f'<td><meter min="0" max="1" value="{p:.6f}">{100 * p:.1f}%</meter></td>'
            f"<td>{100 * p:.1f}%</td></tr>"
            for label, p in self
        )
        return (
            '<table class="pyapp-predictions"><caption>Predictions</caption>'
            '<tr><th scope="col">label</th><th scope="col"></th><th scope="col">probability</th></tr>'
            f"{rows}</table>"
        )
