"""Auditing what runs (or will run) against the compiled rules: `kupe-policy audit` and `kupe-policy promote`.

`reading` turns files into workloads and evidence, `evidence` maps cluster reports to rule ids,
`verdicts` evaluates workloads with the backends' adapters, `formats` renders the results, and
`promote` decides whether a recommended rule can become required and edits its source.
"""
