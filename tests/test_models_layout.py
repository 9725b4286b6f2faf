"""models/ is laid out by role and imports one way: evaluation > training > generation > networks | music >
config | tokens | timebase (issue 23.5). A module that reaches up (say generation importing a training helper)
is named here with the import that does it."""
import grimp

MODEL_LAYERS = ["models.evaluation", "models.training", "models.generation", {"models.networks", "models.music"},
                {"models.config", "models.tokens", "models.timebase"}]


def illegal(layers):
    graph = grimp.build_graph("models", "symmv", "annotators", cache_dir=None)
    return {f"{d.importer} -> {d.imported}: " + "; ".join(f"{sorted(r.heads)} -> {list(r.middle)} -> {sorted(r.tails)}"
                                                         for r in d.routes)
            for d in graph.find_illegal_dependencies_for_layers(layers=layers)}


def test_model_roles_import_downward_only():
    assert illegal(MODEL_LAYERS) == set()


def test_the_layer_check_sees_an_upward_import():
    # the same graph read bottom-up: every real downward import is now an upward one, so the check is not vacuous
    found = illegal(list(reversed(MODEL_LAYERS)))
    assert any(line.startswith("models.evaluation -> models.training") for line in found)
    assert any(line.startswith("models.generation -> models.networks") for line in found)


def test_models_evaluate_and_variants_form_no_circle():
    graph = grimp.build_graph("models", "symmv", "annotators", cache_dir=None)
    assert graph.direct_import_exists(importer="models.evaluation.evaluate", imported="models.evaluation.variants")
    assert graph.find_shortest_chain(importer="models.evaluation.variants", imported="models.evaluation.evaluate") is None
