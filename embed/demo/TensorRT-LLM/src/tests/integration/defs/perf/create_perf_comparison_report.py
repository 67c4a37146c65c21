"""Writes a one-page PDF comparing perf results with the baseline.

Usage: create_perf_comparison_report.py --output_path <pdf> --files <csv>...
"""
import argparse
import csv
import os


def rows(paths):
    out = []
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                out.append(f"{os.path.basename(path)}: {row['perf_case_name']} {row['metric_type']} = {row['perf_metric']}")
    return out


def pdf(lines):
    text = "BT /F1 10 Tf 40 800 Td 14 TL " + " ".join(
        "(" + l.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for l in lines) + " ET"
    objs = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(text)} >>\nstream\n{text}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>",
    ]
    body, offsets = "%PDF-1.4\n", []
    for i, o in enumerate(objs, 1):
        offsets.append(len(body))
        body += f"{i} 0 obj\n{o}\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n" + "".join(f"{o:010d} 00000 n \n" for o in offsets)
    body += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return body.encode("latin-1", "replace")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--output_path", required=True)
    p.add_argument("--files", nargs="+", required=True)
    args = p.parse_args()
    data = pdf(["Perf comparison report"] + rows(args.files))
    os.makedirs(os.path.dirname(args.output_path) or ".", exist_ok=True)
    tmp = args.output_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, args.output_path)
    print(f"wrote {args.output_path}")


if __name__ == "__main__":
    main()
