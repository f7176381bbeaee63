"""SIEM detection rules in Sigma over the console's logs.

- ``logsources``: our log types as Sigma log sources and fields, and the
  pySigma processing pipeline that maps a rule onto them;
- ``compiler``: a rule file (YAML) to SQL conditions and correlation specs,
  with every problem located at its line; ``compiled_rule`` holds what it
  gives, ``documents`` the safe loading of the YAML and the lines problems
  are about, ``detection_queries`` and ``correlation_specs`` the two kinds
  of rule;
- ``prefilter``: the literals that let most records skip SQLite;
- ``evaluator``: the rules' SQL over a batch of flattened records in SQLite;
- ``correlation``: event_count, value_count, temporal and temporal_ordered
  correlations, with state that carries over from batch to batch;
- ``alerting``: what a rule found, as native SIEM alerts;
- ``rules/``: the predefined rules, one file each.

The business operations around them (saving rules, the periodic run and its
watermark, the dry run) are in ``alerts.detection_rules``, ``alerts.detection_run``
and ``alerts.detection_dryrun``.
"""
