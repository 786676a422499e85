"""The operators' dashboard (Streamlit), installed as `watchtower.dashboards`.

The page scripts in `views/` are thin: what they show is assembled by importable, unit-tested
modules — `data` (reads the store), `scoring` (compliance percentages), `drift` (drift evidence),
`actions` (the only writes: approvals, rejections, acknowledgements, audit), `reports` (the seam
to the reports engine) and `watchtower.dashboards.auth` (users, roles, sessions).
"""
