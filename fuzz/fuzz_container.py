"""atheris entry point: the container reader (see fuzz/README.md)."""

from _entry import main

if __name__ == "__main__":
    main("container")
