import harness
harness.run_tests([])
