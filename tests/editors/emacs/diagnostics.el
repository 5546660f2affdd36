;;; diagnostics.el --- failing-test diagnostics in eglot, in batch  -*- lexical-binding: t -*-
;; Environment: SNIPPET (the README's init code), FIRST (a file opened first, which starts the
;; server), TEST_FILE (the failing test's file, opened once the server has published its
;; diagnostics), OUT (results, as JSON).

(package-initialize)
(load (getenv "SNIPPET") nil t)
(require 'json)
(require 'flymake)

(defvar coder-lsp-test--out nil)
(defun coder-lsp-test--note (key value)
  (push (cons key value) coder-lsp-test--out))

(defun coder-lsp-test--wait (seconds predicate)
  (let ((deadline (+ (float-time) seconds)))
    (while (and (not (funcall predicate)) (< (float-time) deadline))
      (accept-process-output nil 0.1))
    (funcall predicate)))

(condition-case err
    (progn
      (find-file (getenv "FIRST"))
      (run-hooks 'post-command-hook)
      (coder-lsp-test--note
       "connected" (if (coder-lsp-test--wait 60 #'eglot-current-server) t :json-false))
      ;; The server reads the test report at start and publishes for a file not open yet.
      (accept-process-output nil 3)
      (find-file (getenv "TEST_FILE"))
      (run-hooks 'post-command-hook)
      (coder-lsp-test--wait 30 #'eglot-managed-p)
      ;; Flymake waits for the buffer to be shown before its first check, which never
      ;; happens in batch: start it, as showing the buffer would.
      (coder-lsp-test--wait 30 (lambda () (flymake-start) (flymake-diagnostics)))
      (coder-lsp-test--note
       "diagnostics"
       (vconcat (mapcar (lambda (d)
                          (list (flymake-diagnostic-text d)
                                (line-number-at-pos (flymake-diagnostic-beg d))))
                        (flymake-diagnostics)))))
  (error (coder-lsp-test--note "error" (format "%S" err))))

(with-temp-file (getenv "OUT")
  (insert (json-encode coder-lsp-test--out)))
(ignore-errors (eglot-shutdown (eglot-current-server)))
(kill-emacs 0)
