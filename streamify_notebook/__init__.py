"""Jupyter widgets for Streamify (see DESIGN.md, "Front ends")."""
