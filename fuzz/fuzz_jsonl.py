"""atheris entry point: the jsonl reader (see fuzz/README.md)."""

from _entry import main

if __name__ == "__main__":
    main("jsonl")
