"""Sphinx configuration of the resnet_fast site. `tools/build_docs.py` copies this folder next to the
preprocessed notebooks (the Results page is the results chapter), then runs Sphinx (MyST-NB, notebooks never executed)."""
project = "resnet_fast"
author = "resnet_fast developers"
copyright = "2026 onwards, resnet_fast developers"
extensions = ["myst_nb"]
html_theme = "furo"
html_title = "resnet_fast"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_favicon = "_static/favicon.svg"
html_show_sourcelink = False
html_copy_source = False
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]
nb_execution_mode = "off"
nb_merge_streams = True
nb_output_stderr = "show"
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
nitpicky = True
suppress_warnings = []
pygments_style = "friendly"
