"""The shipped rules: `NAME.yaml` holds the rows users tune (thresholds, window, zone, citation),
`NAME.py` the checks of the rule ids that start with `NAME.`; both register through `rules.registry`.

`--rules DIR` points at a copy of the YAML files; the checks always come from here.
"""
