import pytest

from cairn.domain.auth.scope_templates import ScopeTemplate, ScopeTemplateError
from cairn.domain.auth.scopes import valid_expression

EXPRESSIONS = "scope_expressions.json"


@pytest.mark.vectors(EXPRESSIONS, "templateRender")
def test_render(case):
    rendered = ScopeTemplate(case["template"]).render(case["params"])
    assert rendered == case["expected"]
    assert rendered is None or valid_expression(rendered)


@pytest.mark.vectors(EXPRESSIONS, "templateRenderErrors")
def test_render_errors(case):
    template = ScopeTemplate(case["template"])
    assert not template.validate(case["params"])
    with pytest.raises(ScopeTemplateError) as raised:
        template.render(case["params"])
    assert str(raised.value) == case["error_message"]


@pytest.mark.vectors(EXPRESSIONS, "templateValidateParams")
def test_validate_params(case):
    template = ScopeTemplate(case["template"])
    assert template.validate(case["params"]) is case["expected"]
    template.render(case["params"])


@pytest.mark.vectors(EXPRESSIONS, "templateIsValid")
def test_is_valid(case):
    assert ScopeTemplate.is_valid(case["template"]) is case["expected"]


# -- edge cases beyond the vectors --------------------------------------------


def test_params_lists_what_the_template_needs():
    template = ScopeTemplate(
        {
            "AllOf": [
                "queue:create-task:<priority>:<taskQueueId>",
                {"for": "route", "in": "routes", "each": "queue:route:<route>"},
                {"if": "private", "then": {"AnyOf": ["secrets:get:<name>"]}},
            ]
        }
    )
    assert sorted(template.params) == ["name", "priority", "private", "routes", "taskQueueId"]
    params = {"priority": "low", "taskQueueId": "p/w", "routes": ["a", "b"], "private": False}
    assert not template.validate(params)  # static: `name` is needed whatever `private` is
    assert template.validate({**params, "name": "n"})
    assert template.render(params) == {
        "AllOf": ["queue:create-task:low:p/w", "queue:route:a", "queue:route:b"]
    }


def test_for_over_an_empty_list_renders_nothing():
    template = ScopeTemplate({"AnyOf": ["x", {"for": "r", "in": "rs", "each": "r:<r>"}]})
    assert template.render({"rs": []}) == {"AnyOf": ["x"]}


def test_numbers_render_as_javascript_prints_them():
    template = ScopeTemplate("a:<n>:<m>")
    assert template.render({"n": 7, "m": 2.0}) == "a:7:2"
    assert template.render({"n": 1.5, "m": -3}) == "a:1.5:-3"


def test_booleans_are_not_strings():
    template = ScopeTemplate("a:<n>")
    assert not template.validate({"n": True})
    with pytest.raises(ScopeTemplateError):
        template.render({"n": True})


def test_parameter_values_are_not_rendered_again():
    assert ScopeTemplate("a:<x>").render({"x": "<y>", "y": "no"}) == "a:<y>"


def test_nested_if_and_else():
    template = ScopeTemplate(
        {"if": "a", "then": {"if": "b", "then": "both", "else": "a-only"}, "else": "none"}
    )
    assert template.render({"a": True, "b": False}) == "a-only"
    assert template.render({"a": False}) == "none"


@pytest.mark.parametrize(
    "template",
    [
        {"for": "x", "in": "xs", "each": "<x>"},
        {"AllOf": [{"for": "x", "in": "xs", "each": {"AllOf": ["<x>"]}}]},
        {"AllOf": [{"for": "1x", "in": "xs", "each": "<x>"}]},
        {"if": "p", "then": {"for": "x", "in": "xs", "each": "<x>"}},
        {"if": "p"},
        {"AllOf": "abc"},
        {"AllOf": [], "AnyOf": []},
        ["abc"],
        None,
        3,
    ],
)
def test_invalid_templates_are_rejected(template):
    assert not ScopeTemplate.is_valid(template)
    with pytest.raises(ScopeTemplateError):
        ScopeTemplate(template)


def test_a_param_used_with_two_types_is_rejected():
    with pytest.raises(ScopeTemplateError, match="cannot be both"):
        ScopeTemplate({"if": "p", "then": "scope:<p>"})
