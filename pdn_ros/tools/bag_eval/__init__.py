"""`pdn-bag-eval`, by job: `run` (a bag through the node's per-frame code), `report` (metrics
and the report folder), `cli` (the command line)."""
