"""Airflow hook and operator for Streamify (see DESIGN.md, "Front ends")."""
