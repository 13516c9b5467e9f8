"""Image -> prompt: a captioner proposes a prompt's text, a tagger its objects (the prompt workbench's proposers).

They sit beside the metrics because they load the very models two metrics
load (the VLM of VQAScore/TIFA/DSG, GenEval's OWLv2 and CLIP), through the
same loaders and the same random-weight builders for the demo and the tests.
"""
