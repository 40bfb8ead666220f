"""The only code that makes system calls."""
