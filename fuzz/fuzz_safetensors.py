"""atheris entry point: the safetensors reader (see fuzz/README.md)."""

from _entry import main

if __name__ == "__main__":
    main("safetensors")
