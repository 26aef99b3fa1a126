"""`python -m denoise_jax.pretrained.ship` still works: the command lives in `denoise_jax.ship`.

Run by name, not imported, so this package (a low layer: shipped-model folders) imports
nothing above it.
"""

if __name__ == "__main__":
    import runpy

    runpy.run_module("denoise_jax.ship", run_name="__main__", alter_sys=True)
