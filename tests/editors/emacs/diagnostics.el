;;; diagnostics.el --- failing-test diagnostics in eglot, in batch  -*- lexical-binding: t -*-
;; FIRST: a file opened first (it starts the server); TEST_FILE: the failing test's file,
;; opened once the server has published its diagnostics; see common.el.

(load (expand-file-name "common.el" (file-name-directory load-file-name)) nil t)
(require 'flymake)

(coder-lsp-test-run
 (coder-lsp-test-open (getenv "FIRST"))
 (coder-lsp-test-note "connected" (if (eglot-current-server) t :json-false))
 ;; The server reads the test report at start and publishes for a file not open yet.
 (accept-process-output nil 3)
 (coder-lsp-test-open (getenv "TEST_FILE"))
 ;; Flymake waits for the buffer to be shown before its first check, which never happens
 ;; in batch: start it, as showing the buffer would.
 (coder-lsp-test-wait 30 (lambda () (flymake-start) (flymake-diagnostics)))
 (coder-lsp-test-note
  "diagnostics"
  (vconcat (mapcar (lambda (d)
                     (list (flymake-diagnostic-text d)
                           (line-number-at-pos (flymake-diagnostic-beg d))))
                   (flymake-diagnostics)))))
