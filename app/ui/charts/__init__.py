"""Altair chart builders (DataFrames in, charts out). Importing the package enables the dashboard's
theme (app.ui.charts.figure): one font and type scale for every chart."""

from app.ui.charts import figure as _figure  # noqa: F401 - registers and enables the theme
