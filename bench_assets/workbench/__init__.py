"""The prompt workbench (``bench prompts``): browse, edit and grow prompt suites in the browser."""
