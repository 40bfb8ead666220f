"""Pure plan: every kernel object a lab needs, as plain data. No kernel access here."""
