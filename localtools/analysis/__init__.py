"""Infer a tool-call dialect (a DialectSpec) from a chat template alone."""

from localtools.analysis.analyze import TemplateAnalysis, analyze_template

__all__ = ["TemplateAnalysis", "analyze_template"]
