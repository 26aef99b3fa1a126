from denoise_jax.cli import main

raise SystemExit(main())
