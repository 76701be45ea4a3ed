"""Scope-expression templates, as endpoints declare their required scopes.

A template is a scope expression whose strings may hold `<param>`
placeholders, plus two forms that appear only inside a template:

- `{"if": "p", "then": T, "else": U}`: T when the boolean param is true, else U
  (without `else`, nothing: the form is dropped from its parent);
- `{"for": "x", "in": "xs", "each": "...<x>..."}`: one scope per element of
  the list param `xs`, spliced into the parent AllOf/AnyOf.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .scopes import Expression

Template: TypeAlias = str | dict[str, Any]
ParamType: TypeAlias = Literal["string", "array", "boolean"]

_PARAM_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_PLACEHOLDER = re.compile(r"<([a-zA-Z][a-zA-Z0-9_]*)>")


class ScopeTemplateError(ValueError):
    """Invalid scope expression template."""


class ScopeTemplate:
    """A compiled template: `render(params)` gives a scope expression (or None)."""

    def __init__(self, template: Template) -> None:
        if not self.is_valid(template):
            raise ScopeTemplateError(f"Invalid scope expression template: {template!r}")
        self.template = template
        self._param_types = _param_types(template)
        self.params: list[str] = list(self._param_types)

    @staticmethod
    def is_valid(template: object) -> bool:
        """Whether an endpoint may declare `template` as its scopes."""
        return _valid_root(template)

    def render(self, params: dict[str, Any]) -> Expression | None:
        return _render(self.template, params)

    def validate(self, params: dict[str, Any]) -> bool:
        """Whether `params` has every parameter, of the right type, to render."""
        return all(_has_type(params.get(p), t) for p, t in self._param_types.items())


def _valid_root(template: object) -> bool:
    return isinstance(template, str) or (
        _valid(template) and any(k in template for k in ("AllOf", "AnyOf", "if"))
    )


def _valid(template: object) -> bool:
    if isinstance(template, str):
        return True
    if not isinstance(template, dict):
        return False
    keys = set(template)
    if keys in ({"AllOf"}, {"AnyOf"}):
        (operands,) = template.values()
        return isinstance(operands, list) and all(map(_valid, operands))
    if keys == {"for", "in", "each"}:
        return (
            _is_param_name(template["for"])
            and _is_param_name(template["in"])
            and isinstance(template["each"], str)
        )
    if keys in ({"if", "then"}, {"if", "then", "else"}):
        branches = [template[k] for k in ("then", "else") if k in template]
        return _is_param_name(template["if"]) and all(map(_valid_root, branches))
    return False


def _is_param_name(name: object) -> bool:
    return isinstance(name, str) and _PARAM_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class _Params:
    types: dict[str, ParamType]

    def merge(self, other: dict[str, ParamType]) -> _Params:
        types = dict(self.types)
        for name, kind in other.items():
            if types.get(name, kind) != kind:
                raise ScopeTemplateError(
                    f"Parameter {name} cannot be both '{kind}' and '{types[name]}'"
                )
            types[name] = kind
        return _Params(types)


def _param_types(template: Template) -> dict[str, ParamType]:
    if isinstance(template, str):
        return {name: "string" for name in _PLACEHOLDER.findall(template)}
    if "AllOf" in template or "AnyOf" in template:
        (operands,) = template.values()
        params = _Params({})
        for operand in operands:
            params = params.merge(_param_types(operand))
        return params.types
    if "for" in template:
        loop = {template["in"]: "array", template["for"]: "string"}
        types = _Params(loop).merge(_param_types(template["each"])).types
        del types[template["for"]]
        return types
    branches = _Params(_param_types(template["then"]))
    if "else" in template:
        branches = branches.merge(_param_types(template["else"]))
    return _Params({template["if"]: "boolean"}).merge(branches.types).types


def _has_type(value: Any, kind: ParamType) -> bool:
    if kind == "string":
        return _is_text(value)
    if kind == "array":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _render(template: Template, params: dict[str, Any]) -> Any:
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda m: _text(params, m.group(1)), template)
    if "AllOf" in template or "AnyOf" in template:
        ((operator, operands),) = template.items()
        rendered: list[Any] = []
        for operand in operands:
            result = _render(operand, params)
            if isinstance(result, list):
                rendered.extend(result)
            elif result is not None:
                rendered.append(result)
        return {operator: rendered}
    if "for" in template:
        values = params.get(template["in"])
        if not isinstance(values, list):
            raise ScopeTemplateError(
                f"Scope expression template expected parameter '{template['in']}' to be a array"
            )
        return [_render(template["each"], {**params, template["for"]: v}) for v in values]
    condition = params.get(template["if"])
    if not isinstance(condition, bool):
        raise ScopeTemplateError(
            f"Scope expression template expected parameter '{template['if']}' to be a boolean"
        )
    if condition:
        return _render(template["then"], params)
    return _render(template["else"], params) if "else" in template else None


def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not _is_text(value):
        raise ScopeTemplateError(
            f"Scope expression template expected parameter '{name}' to be a string or number"
        )
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # as JavaScript prints 2.0
    return str(value)
