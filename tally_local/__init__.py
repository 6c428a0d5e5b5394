"""tally's Docker-less local runtime (`tally serve`, `tally invoke`): tooling, not domain.

It reads template.yaml and calls the handlers exactly as Lambda would; nothing in shared/ or
functions/ knows it exists.
"""
