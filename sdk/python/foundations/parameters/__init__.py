"""foundations.parameters.generate_random_parameters, as in the original
(which used numpy; the standard library's random here)."""

import random

__all__ = ["generate_random_parameters"]


def generate_random_parameters(parameter_search_space):
    """A dict drawn from a search space: {"min": a, "max": b} becomes a
    uniform number in [a, b); with "min_count"/"max_count" too, a list of
    such numbers whose length is drawn in [min_count, max_count); any other
    value is taken as it is."""
    if not isinstance(parameter_search_space, dict):
        raise TypeError()
    generated = {}
    for name, content in parameter_search_space.items():
        if isinstance(content, dict) and "min" in content and "max" in content:
            if "min_count" in content and "max_count" in content:
                count = random.randrange(content["min_count"], content["max_count"])
                generated[name] = [random.uniform(content["min"], content["max"])
                                   for _ in range(count)]
            else:
                generated[name] = random.uniform(content["min"], content["max"])
        if generated.get(name) is None:
            generated[name] = content
    return generated
