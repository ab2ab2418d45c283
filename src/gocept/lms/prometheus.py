"""The Prometheus text exposition format (version 0.0.4).

`Exposition` collects metric families and renders them as the text a
Prometheus server scrapes; `@@metrics` (`browser/metrics.py`) fills it.
"""


def _label_value(value):
    return (str(value).replace('\\', r'\\').replace('"', r'\"')
            .replace('\n', r'\n'))


def _number(value):
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if value != value:
        return 'NaN'
    return repr(float(value))


class Exposition:
    """Collects metric families and renders them as text."""

    def __init__(self):
        self.lines = []

    def family(self, name, kind, help, samples):
        """Add one family; `samples` are `(labels, value)` pairs or
        `(suffix, labels, value)` triples (for histograms)."""
        self.lines.append('# HELP %s %s' % (
            name, help.replace('\\', r'\\').replace('\n', r'\n')))
        self.lines.append('# TYPE %s %s' % (name, kind))
        for sample in samples:
            if len(sample) == 2:
                suffix, (labels, value) = '', sample
            else:
                suffix, labels, value = sample
            label_text = ','.join(
                '%s="%s"' % (k, _label_value(v)) for k, v in labels)
            self.lines.append('%s%s%s %s' % (
                name, suffix, '{%s}' % label_text if label_text else '',
                _number(value)))

    def text(self):
        return '\n'.join(self.lines) + '\n'
