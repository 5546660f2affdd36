;;; common.el --- what the batch scripts share  -*- lexical-binding: t -*-
;; Loads the README's init code (SNIPPET), and gives `coder-lsp-test-note' (a result),
;; `coder-lsp-test-wait' (accept process output until a predicate holds) and
;; `coder-lsp-test-open' (visit a file as a user would, until eglot manages it).

(package-initialize)                    ; an eglot installed as a package (Emacs 28)
(load (getenv "SNIPPET") nil t)
(require 'json)

(defvar coder-lsp-test--out nil)

(defun coder-lsp-test-note (key value)
  (push (cons key value) coder-lsp-test--out))

(defun coder-lsp-test-wait (seconds predicate)
  (let ((deadline (+ (float-time) seconds)))
    (while (and (not (funcall predicate)) (< (float-time) deadline))
      (accept-process-output nil 0.1))
    (funcall predicate)))

(defun coder-lsp-test-open (file)
  "Visit FILE; `eglot-ensure' connects after the command that opened it."
  (find-file file)
  (run-hooks 'post-command-hook)
  (coder-lsp-test-wait 60 #'eglot-managed-p))

(defmacro coder-lsp-test-run (&rest body)
  "Run BODY, note an error, write the results to OUT and leave Emacs."
  `(progn
     (condition-case err
         (progn ,@body)
       (error (coder-lsp-test-note "error" (format "%S" err))))
     (with-temp-file (getenv "OUT")
       (insert (json-encode coder-lsp-test--out)))
     (ignore-errors (eglot-shutdown (eglot-current-server)))
     (kill-emacs 0)))
