"""Host emulator: compile generated C, run it through ctypes, compare with the references."""
