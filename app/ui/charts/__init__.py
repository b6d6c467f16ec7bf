"""Altair chart builders (DataFrames in, charts out). Importing the package enables the dashboard's
theme (app.ui.charts.figure): one font and type scale for every chart; and builds Altair's schema
table once per process instead of once per encoding (app.ui.charts.altair_speed)."""

from app.ui.charts import altair_speed as _altair_speed
from app.ui.charts import figure as _figure  # noqa: F401 - registers and enables the theme

_altair_speed.install()
