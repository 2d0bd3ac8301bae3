"""Target languages shared by more than one backend."""
